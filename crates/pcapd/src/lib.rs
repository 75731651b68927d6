//! `pcapd`: the capturer/translator (libpcap capture, decode, Cloud Logging JSON). Not
//! implemented yet; its issue builds it here.
