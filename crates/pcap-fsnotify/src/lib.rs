//! `pcap-fsnotify`: watches the capture directory and exports completed files. Not
//! implemented yet; its issue builds it here.
