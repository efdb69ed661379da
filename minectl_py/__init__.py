"""minectl: the mine-site controller appliance.

Kept empty on purpose: the DHCP lease hook imports this package once per lease change,
so nothing here may import more than the standard library needs.
"""

__version__ = "0.1.0"
