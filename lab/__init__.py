"""The built-in lab: network namespaces that stand in for a corporate host,
Apple's network and MDM consoles. See lab/README.md."""
