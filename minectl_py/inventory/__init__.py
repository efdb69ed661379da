"""The site inventory: the CSV ops keep, validated, turned into dnsmasq reservations and locations."""
