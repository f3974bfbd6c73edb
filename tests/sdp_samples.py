"""SDP offers shaped like the ones real viewers send (docs/PROTOCOLS.md §5)."""

FP = (
    "sha-256 6B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:"
    "DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08"
)

# An Echo Show offer: s=a 2 z, port 1, BUNDLE, H264 PT 99 with no fmtp, Opus 96
# plus static 0/8 without rtpmap, host UDP and TCP candidates, b=AS:2500. The
# candidates are on loopback (port 9, discard): an agent answering this offer
# sends its ICE checks nowhere but this machine, and nothing answers them.
ECHO_SHOW_OFFER = (
    "\r\n".join(
        [
            "v=0",
            "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
            "s=a 2 z",
            "t=0 0",
            "a=group:BUNDLE audio video",
            "a=msid-semantic: WMS",
            "m=audio 1 UDP/TLS/RTP/SAVPF 96 0 8",
            "c=IN IP4 0.0.0.0",
            "a=rtcp:9 IN IP4 0.0.0.0",
            "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host generation 0",
            "a=candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0",
            "a=ice-ufrag:EcHo",
            "a=ice-pwd:echoshowpassword0123456",
            f"a=fingerprint:{FP}",
            "a=setup:actpass",
            "a=mid:audio",
            "a=sendrecv",
            "a=rtcp-mux",
            "a=rtpmap:96 opus/48000/2",
            "a=fmtp:96 minptime=10;useinbandfec=1",
            "a=ssrc:11111111 cname:echo",
            "m=video 1 UDP/TLS/RTP/SAVPF 99",
            "c=IN IP4 0.0.0.0",
            "b=AS:2500",
            "a=rtcp:9 IN IP4 0.0.0.0",
            "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host generation 0",
            "a=candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active generation 0",
            "a=ice-ufrag:EcHo",
            "a=ice-pwd:echoshowpassword0123456",
            f"a=fingerprint:{FP}",
            "a=setup:actpass",
            "a=mid:video",
            "a=sendrecv",
            "a=rtcp-mux",
            "a=rtpmap:99 H264/90000",
            "a=rtcp-fb:99 nack",
            "a=rtcp-fb:99 nack pli",
            "a=rtcp-fb:99 ccm fir",
            "a=ssrc:22222222 cname:echo",
        ]
    )
    + "\r\n"
)
