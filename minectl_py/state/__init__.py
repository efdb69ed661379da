"""The per-miner state directory: a projection of the event log (docs/state.md).

Kept empty: the lease hook imports ``minectl_py.state.project`` once per lease change.
"""
