"""The poller (``minectl poll``): every miner's stats into the event log and the state directory."""
