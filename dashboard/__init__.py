"""The dashboard's cached query layer (`queries`), the plain queries it wraps (`data`), the
filters (`filters`), page building blocks (`components`), chart builders (`charts`) and the
retro notes (`retro`). Pages in `pages/` are thin scripts over these; see docs/dashboard.md.
"""
