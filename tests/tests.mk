# tests (filled in below)
