"""pushpipe: a Python client for the pushpipe broker (see docs/clients.md).

    from pushpipe import Client
    client = Client("127.0.0.1", 5560)
    client(1, group_id, {"alert": "hi"})
"""
from .client import (DEFAULT_ADDRESS, Accepted, AckClient, Client, Error, Rejected,
                     Timeout, decode_reply, encode, endpoint)

__all__ = ["Client", "AckClient", "Accepted", "Error", "Rejected", "Timeout", "encode",
           "decode_reply", "endpoint", "DEFAULT_ADDRESS"]
__version__ = "0.1.0"
