"""Fault-schedule runs: orders and cancels under kills, freezes, broker and database faults."""
