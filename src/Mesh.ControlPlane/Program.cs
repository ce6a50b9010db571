// Entry point of the control plane executable; the server itself arrives with the xDS server work.
return 0;
