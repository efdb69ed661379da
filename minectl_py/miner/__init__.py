"""Talking to miners: the cgminer-family API client (``api``), polling one miner (``poll``),
the normalized data model (``model``) and the per-firmware normalization (``normalize``)."""
