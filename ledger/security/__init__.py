"""Who may do what: certificates, principals and roles, TLS settings, and the table
that authorises every RPC. Below the node layer, because peers dial each other too."""
