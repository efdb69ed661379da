"""``minectl`` for site admins: seeing the site (status, show, summary, map) and acting on
miners (reboot, restart, pools, locate, exec). See docs/runbook.md, section ``minectl``.

Functional core (no I/O): :mod:`fields`, :mod:`where`, :mod:`select`, :mod:`health`,
:mod:`render`, :mod:`grid`, :mod:`plan`. Edges: :mod:`fleet` (state directory),
:mod:`transports`, :mod:`engine`, :mod:`audit`, :mod:`perms`, :mod:`credentials`.
"""
