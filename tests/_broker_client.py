"""The mount broker's client in Python, from the standard library alone.

It speaks the wire itself: NUL-ended JSON on a Unix stream socket, fds with
SCM_RIGHTS (socket.send_fds, socket.recv_fds). Its argument is a JSON object:
{"socket", "method", "parameters", "fds": [paths]}. It prints one JSON line:
the reply, and for a reply with fds, "owners": the uid:gid of each fd's file
as this process sees it.
"""

import json
import os
import socket
import sys


def main():
    request = json.loads(sys.argv[1])
    fds = [os.open(path, os.O_RDONLY) for path in request.get("fds", [])]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(request["socket"])
        call = {"method": request["method"], "parameters": request.get("parameters", {})}
        data = json.dumps(call).encode() + b"\0"
        if fds:
            socket.send_fds(s, [data], fds)
        else:
            s.sendall(data)
        for fd in fds:
            os.close(fd)
        buffer, received = b"", []
        while b"\0" not in buffer:
            chunk, got, _flags, _addr = socket.recv_fds(s, 65536, 8)
            if not chunk:
                break
            buffer += chunk
            received += got
    reply = json.loads(buffer.split(b"\0")[0])
    owners = []
    for fd in received:
        st = os.fstat(fd)
        owners.append(f"{st.st_uid}:{st.st_gid}")
        os.close(fd)
    reply["owners"] = owners
    print(json.dumps(reply))


main()
