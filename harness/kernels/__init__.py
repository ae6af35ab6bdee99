"""Kernels to boot in a VM: which ones an archive offers (Debian's or Ubuntu's, as
this host's apt sees it), which of them a spec picks (`6.1`, `6.1.0-53`, `latest`,
`all`, `6.1.0-47..6.1.0-57`), fetching them checked against the archive's own
checksums into a cache, and kernels of the user's own (a .deb, a build tree)."""
