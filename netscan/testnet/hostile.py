#!/usr/bin/env python3
"""Hostile TCP services for Picket's test network.

A scanner meets services that are broken or malicious; these four make sure service detection
stays bounded in time and memory, and never panics, whatever the other end does:

  7001  binary banner: 4 KiB of non-text bytes (NULs, 0xff, invalid UTF-8), then silence
  7002  a 10 MB banner, as fast as the client reads it
  7003  one byte every 3 seconds (a tarpit), up to 100 bytes
  7004  connection reset: accept, then close with SO_LINGER 0 (RST)

Every connection is closed by the server after at most 5 minutes, and the server reads at most
64 KiB from any client, so a buggy test cannot make it grow without bound.
"""

import asyncio
import os
import socket
import struct

MAX_CONN_SECONDS = 300
MAX_READ = 64 * 1024


async def drain_client(reader):
    """Reads (and drops) what the client sends, bounded."""
    total = 0
    try:
        while total < MAX_READ:
            chunk = await reader.read(4096)
            if not chunk:
                return
            total += len(chunk)
    except (ConnectionError, OSError):
        return


async def close(writer):
    try:
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


async def binary_banner(reader, writer):
    writer.write(bytes(range(256)) * 8 + b"\x00\xff\xfe\xc3\x28" * 400 + os.urandom(1024))
    await writer.drain()
    await drain_client(reader)


async def huge_banner(reader, writer):
    block = b"220 " + b"A" * (64 * 1024 - 6) + b"\r\n"
    for _ in range(10 * 1024 * 1024 // len(block) + 1):
        writer.write(block)
        await writer.drain()


async def tarpit(reader, writer):
    for _ in range(100):
        writer.write(b"S")
        await writer.drain()
        await asyncio.sleep(3)


async def reset(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def bounded(handler):
    async def run(reader, writer):
        try:
            await asyncio.wait_for(handler(reader, writer), MAX_CONN_SECONDS)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            pass
        finally:
            await close(writer)

    return run


async def main():
    servers = []
    for port, handler in ((7001, binary_banner), (7002, huge_banner), (7003, tarpit), (7004, reset)):
        servers.append(await asyncio.start_server(bounded(handler), host=None, port=port, reuse_address=True))
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main())
