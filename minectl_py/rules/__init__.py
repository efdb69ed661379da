"""The site watchdog: rules over miners' state that raise alerts, notify, and act with limits.

Functional core: ``yamlpos`` / ``ruleset`` (the rules file), ``expr`` (conditions), ``facts``
(a miner's testable values), ``scope`` (scopes and silence selectors), ``state`` (the fold over
events), ``engine`` (decisions). I/O edges: ``replay``, ``notify``, ``actuator``, ``service``,
``cli``. See docs/rules.md.
"""
