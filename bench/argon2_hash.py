"""Argon2id hash and verify time with the argon2-cffi defaults that kiosk.passwords.Hasher uses."""

from __future__ import annotations

import statistics
import time

from bench import Figure

ORDER = 40
HASHES = 20
SECRET = "correct horse battery staple 42"


def measure() -> list[Figure]:
    from kiosk.passwords import Hasher

    hasher = Hasher()  # PasswordHasher() defaults, exactly as the kiosk builds it
    params = hasher._hasher  # read only, to say which parameters were measured
    hasher.hash(SECRET)  # warm-up: first call loads the library and touches the memory

    hash_s, hashes = [], []
    for _ in range(HASHES):
        t0 = time.perf_counter()
        hashes.append(hasher.hash(SECRET))
        hash_s.append(time.perf_counter() - t0)

    verify_s = []
    for hashed in hashes:
        t0 = time.perf_counter()
        ok = hasher.verify(hashed, SECRET)
        verify_s.append(time.perf_counter() - t0)
        if not ok:
            raise RuntimeError("argon2 verify refused its own hash")

    setting = (
        f"t={params.time_cost}, m={params.memory_cost} KiB, p={params.parallelism}, "
        f"median of {HASHES}"
    )
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    return [
        Figure(
            "argon2.hash",
            ms(hash_s),
            "ms",
            note=f"{setting} (min {min(hash_s) * 1000:.0f}, max {max(hash_s) * 1000:.0f} ms)",
        ),
        Figure(
            "argon2.verify",
            ms(verify_s),
            "ms",
            note=f"correct password, median of {HASHES} (min {min(verify_s) * 1000:.0f}, "
            f"max {max(verify_s) * 1000:.0f} ms)",
        ),
    ]
