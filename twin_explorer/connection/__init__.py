"""Connection strings, SAS tokens, log redaction, saved hub profiles and their secrets.

Pure stdlib except profiles/secrets (keyring) and the paths they use (platformdirs).
No Qt and no Azure SDK: the local hub verifies tokens with sas.py, the GUI builds
strings with strings.py.
"""
