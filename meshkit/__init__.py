"""Shared infrastructure of the mesh: the mesh file, connections, setup, the dev
server, worker processes, and the toolkit teams build their services on."""
