"""Department extracts: how each is read, its specification (as data, one file per department in `departments/`),
and its cleaning.

- `registry`   the source specifications loaded from `departments/<source>.yaml` (and from a
               deployment's folder named by DOUDI_DEPARTMENTS_DIR)
- `readers`    files (CSV in any of the encodings departments use, Excel) to text columns
- `cleaning`   vectorised cleaners per column type (IDs, names, dates, money, codes)
- `medical`, `disability`, `education`, `detention`: what is particular to that
  department (derived values, consistency rules); sources without a module need nothing
  beyond their column types.
"""
