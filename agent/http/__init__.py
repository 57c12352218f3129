"""HTTP/1.1 on asyncio streams, framed by h11: the agent's client and its small server.

The agent speaks HTTP three ways: it POSTs batches to Loki, reads Docker's API (a unix
socket, an events stream), and answers scrapes. aiohttp did all three at 13 MiB of
resident memory (aiohttp, aiohttp.web, aiodocker, yarl, multidict, attrs), a quarter of a
metrics-only agent; h11 (python-hyper) does the protocol's framing in 0.4 MiB, and these
modules do the rest: connections, keep-alive, timeouts.
"""
