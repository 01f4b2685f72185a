"""launderflow: simulate laundering of stolen crypto and the policies that stop it."""
__version__ = "0.1.0"
