"""The DuckDB warehouse: connection (encryption, locking), schema DDL, and the SQL
models the pipeline runs (intermediate/ per-quarter inputs, marts/ the published tables).
"""
