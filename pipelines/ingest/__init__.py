"""Ingest: each source's delivery, read, cleaned and staged (`load`), as one Dagster asset
per source (`assets`), with the inbox sensor (`sensors`)."""
