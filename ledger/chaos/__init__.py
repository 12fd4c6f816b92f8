"""Jepsen-style fault testing against real `ledger serve` processes.

A workload of concurrent clients records every operation it makes; nemeses kill,
pause, partition and drop packets meanwhile; a checker then reads the whole
history and every replica's final log and says whether money was lost, doubled
or overdrawn, whether replicas diverged, and whether reads were linearizable.
"""
