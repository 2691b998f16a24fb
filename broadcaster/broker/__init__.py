"""The broker wing: the Mosquitto loa starts and supervises, who may log in to it and read or write
what (passwords and ACL from the device table), and TLS for small installs."""
