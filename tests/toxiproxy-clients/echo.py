"""A loopback TCP echo server and a round-trip probe, for the Chaos Toolkit experiment.

    python3 echo.py serve PORT_FILE   # serves until killed; writes its port to PORT_FILE
    python3 echo.py measure PORT      # one round trip through 127.0.0.1:PORT; prints seconds
"""

import os
import socket
import sys
import threading
import time


def serve(port_file):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(sock.getsockname()[1]))
    # Renamed into place so a reader never sees a half-written port.
    os.replace(port_file + ".tmp", port_file)

    def echo(conn):
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    while True:
        conn, _ = sock.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def measure(port):
    # The experiment passes `${ctk_PORT}`; should the toolkit leave it unsubstituted, the
    # same value is in the environment (chaostoolkit-toxiproxy sets both).
    if not port.isdigit():
        port = os.environ[port.strip("${}")]
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as conn:
        conn.sendall(b"ping")
        got = b""
        while len(got) < 4:
            chunk = conn.recv(16)
            if not chunk:
                break
            got += chunk
    if got != b"ping":
        print("echo came back as %r" % got)
        sys.exit(1)
    print("%.3f" % (time.monotonic() - start))


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
    elif sys.argv[1:2] == ["measure"]:
        measure(sys.argv[2])
    else:
        sys.exit(__doc__)
