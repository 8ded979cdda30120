"""pushpipe: a Python client for the pushpipe broker (see docs/clients.md).

    from pushpipe import Client
    client = Client("127.0.0.1", 5560)
    client(1, group_id, {"alert": "hi"})

    # several brokers: pushes spread over them; acknowledged pushes fail over
    client = Client.from_address("tcp://a:5560,tcp://b:5560")
"""
from .client import (DEFAULT_ADDRESS, Accepted, AckClient, Client, Error, Rejected,
                     Timeout, addresses, decode_reply, encode, endpoint, generate_id)

__all__ = ["Client", "AckClient", "Accepted", "Error", "Rejected", "Timeout", "encode",
           "decode_reply", "endpoint", "addresses", "generate_id", "DEFAULT_ADDRESS"]
__version__ = "0.1.0"
