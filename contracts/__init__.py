"""Lockgate's wire contracts: msgspec Structs only, no I/O, no imports of our other packages."""
