"""bench/peers: this project against its peers, one interleaved run (see run.py)."""
