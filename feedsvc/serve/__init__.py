"""`feedsvc serve`: the pre-fork server, the scanner process, the hand-off of webhooks between
processes, the scheduler, and the memory settings those processes run with."""
