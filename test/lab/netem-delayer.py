#!/usr/bin/env python3
# The lab's packet delayer (the `netem NAME delay MS [JITTER_MS]` verb of test/lab/lab.ts): the
# lab's kernel has no netem qdisc, so a machine's packets are sent to an NFQUEUE (iptables-legacy,
# in the machine's network namespace) and this program, started in that namespace, accepts each
# one after DELAY +- JITTER ms (uniform, as netem's jitter). Verdicts may be given out of order:
# packets get reordered, as with netem. It speaks nfnetlink_queue directly (no library needed):
# binds the queue, asks for packet metadata only, and answers NF_ACCEPT when a packet is due.
#   usage: netem-delayer.py QUEUE DELAY_MS JITTER_MS
import heapq
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_UNBIND = 1, 2
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
NF_ACCEPT = 1


def attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack('=HH', 4 + len(payload), kind) + payload
    return data + b'\0' * (-len(data) % 4)


def message(msg_type: int, queue: int, attrs: bytes, flags: int = NLM_F_REQUEST, seq: int = 0) -> bytes:
    body = struct.pack('=BBH', socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    return struct.pack('=IHHII', 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags, seq, 0) + body


def config(sock: socket.socket, queue: int, attrs: bytes, seq: int) -> None:
    sock.send(message(NFQNL_MSG_CONFIG, queue, attrs, NLM_F_REQUEST | NLM_F_ACK, seq))
    data = sock.recv(65536)
    length, kind = struct.unpack_from('=IH', data, 0)
    if kind == NLMSG_ERROR:
        (err,) = struct.unpack_from('=i', data, 16)
        if err != 0:
            raise OSError(-err, f'nfnetlink_queue config: {os.strerror(-err)}')


def main() -> int:
    queue, delay_ms, jitter_ms = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
    sock.bind((0, 0))
    config(sock, queue, attr(NFQA_CFG_CMD, struct.pack('!BBH', NFQNL_CFG_CMD_BIND, 0, 0)), 1)
    config(sock, queue, attr(NFQA_CFG_PARAMS, struct.pack('!IB', 0, NFQNL_COPY_META)), 2)
    config(sock, queue, attr(NFQA_CFG_QUEUE_MAXLEN, struct.pack('!I', 20000)), 3)
    # A full queue lets packets through rather than dropping them (the delay is the fault, not loss).
    config(sock, queue, attr(NFQA_CFG_MASK, struct.pack('!I', NFQA_CFG_F_FAIL_OPEN)) + attr(NFQA_CFG_FLAGS, struct.pack('!I', NFQA_CFG_F_FAIL_OPEN)), 4)
    sock.setblocking(False)
    print(f'delaying queue {queue}: {delay_ms} ms +- {jitter_ms} ms', flush=True)

    stop = False

    def on_term(_signum, _frame):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    due: list[tuple[float, int]] = []
    while not stop:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, packet_id = heapq.heappop(due)
            verdict = attr(NFQA_VERDICT_HDR, struct.pack('!II', NF_ACCEPT, packet_id))
            try:
                sock.send(message(NFQNL_MSG_VERDICT, queue, verdict))
            except BlockingIOError:
                select.select([], [sock], [], 0.01)
                sock.send(message(NFQNL_MSG_VERDICT, queue, verdict))
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else 0.5
        try:
            ready, _, _ = select.select([sock], [], [], timeout)
        except InterruptedError:
            continue
        if not ready:
            continue
        while True:
            try:
                data = sock.recv(262144)
            except BlockingIOError:
                break
            except OSError:  # ENOBUFS: the kernel dropped notifications; fail-open and the bypass keep traffic going
                break
            offset = 0
            arrived = time.monotonic()
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from('=IH', data, offset)
                if length < 16:
                    break
                if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                    pos = offset + 20  # netlink header (16) + nfgenmsg (4)
                    while pos + 4 <= offset + length:
                        alen, atype = struct.unpack_from('=HH', data, pos)
                        if alen < 4:
                            break
                        if (atype & 0x7fff) == NFQA_PACKET_HDR:
                            (packet_id,) = struct.unpack_from('!I', data, pos + 4)
                            wait = max(0.0, delay_ms + random.uniform(-jitter_ms, jitter_ms)) / 1000
                            heapq.heappush(due, (arrived + wait, packet_id))
                        pos += (alen + 3) & ~3
                offset += (length + 3) & ~3
    # Let the held packets go before leaving (the queue's bypass passes new ones once unbound).
    for _, packet_id in due:
        try:
            sock.setblocking(True)
            sock.send(message(NFQNL_MSG_VERDICT, queue, attr(NFQA_VERDICT_HDR, struct.pack('!II', NF_ACCEPT, packet_id))))
        except OSError:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
