"""ActivityPub: actors, signatures, inbox, delivery queue."""
