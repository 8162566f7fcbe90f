"""Transport: the ZeroMQ wire format (pure encoding), the client side of the engine connection, and
the broker that spreads streams over engines on several machines with its protocol constants.

May import: engines.util, monitor.errors.
"""
