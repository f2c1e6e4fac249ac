"""Files `poise init` writes (a package so that installs carry them as package data)."""
