"""Markers from Python: label cycles and requests in a memtriage recording.

Run it under the recorder to see the marks in the report:
    memtriage run -- python3 examples/markers.py
Without the recorder the calls do nothing.

The recorder (libmemtriage.so, preloaded by `memtriage run`) exports
memtriage_mark, memtriage_request_begin and memtriage_request_end with the
C ABI; ctypes finds them in the process's global symbol scope.
"""
import ctypes


class Markers:
    """memtriage markers, or no-ops when the recorder is not loaded."""

    def __init__(self):
        scope = ctypes.CDLL(None)
        self._mark = getattr(scope, "memtriage_mark", None)
        self._begin = getattr(scope, "memtriage_request_begin", None)
        self._end = getattr(scope, "memtriage_request_end", None)
        if self._mark:
            self._mark.argtypes = [ctypes.c_char_p]
            self._begin.argtypes = [ctypes.c_uint64, ctypes.c_uint64]
            self._end.argtypes = [ctypes.c_uint64]

    @property
    def recording(self):
        return self._mark is not None

    def mark(self, label):
        if self._mark:
            self._mark(label.encode())

    def request_begin(self, request_id, payload_bytes):
        if self._begin:
            self._begin(request_id, payload_bytes)

    def request_end(self, request_id):
        if self._end:
            self._end(request_id)


if __name__ == "__main__":
    m = Markers()
    cache = []
    for cycle in range(3):
        m.mark(f"cycle {cycle}")
        for i in range(100):
            rid = cycle * 1000 + i
            payload = bytes(4096)
            m.request_begin(rid, len(payload))
            cache.append(bytearray(payload))  # an unbounded cache: grows per request
            m.request_end(rid)
    print("recording" if m.recording else "not recording", len(cache))
