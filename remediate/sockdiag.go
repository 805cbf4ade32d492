package remediate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The port checks ask the kernel through sock_diag(7), as ss(8) does,
// rather than reading /proc/net/tcp{,6}: those files list every connection
// of the host, and the kernel walks its whole connection table for each
// 4 KiB read, which costs milliseconds on an idle machine and far more on a
// busy one. A dump restricted to listening sockets walks only the listening
// table.

const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	tcpListen        = 10 // TCP_LISTEN
	inetDiagReqLen   = 56 // sizeof(struct inet_diag_req_v2)
	inetDiagMsgLen   = 72 // sizeof(struct inet_diag_msg)
)

// listeningInodes returns the socket inodes listening on TCP port, IPv4 and
// IPv6.
func listeningInodes(port int) (map[uint64]bool, error) {
	inodes := map[uint64]bool{}
	for _, family := range []uint8{syscall.AF_INET, syscall.AF_INET6} {
		if err := dumpListeners(family, func(sport uint16, inode uint32) {
			if int(sport) == port {
				inodes[uint64(inode)] = true
			}
		}); err != nil {
			return nil, fmt.Errorf("listing listening sockets: %w", err)
		}
	}
	return inodes, nil
}

// dumpListeners calls found for every listening TCP socket of family.
func dumpListeners(family uint8, found func(sport uint16, inode uint32)) error {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_INET_DIAG)
	if err != nil {
		return fmt.Errorf("opening sock_diag socket: %w", err)
	}
	defer syscall.Close(fd)

	req := make([]byte, syscall.NLMSG_HDRLEN+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFamily)
	ne.PutUint16(req[6:], syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP)
	ne.PutUint32(req[8:], 1) // sequence number
	body := req[syscall.NLMSG_HDRLEN:]
	body[0] = family
	body[1] = syscall.IPPROTO_TCP
	ne.PutUint32(body[4:], 1<<tcpListen) // idiag_states
	if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return fmt.Errorf("asking sock_diag: %w", err)
	}

	buf := make([]byte, 32<<10)
	for {
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading sock_diag: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("parsing sock_diag: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case syscall.NLMSG_DONE:
				return nil
			case syscall.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(ne.Uint32(m.Data)); errno != 0 {
						return fmt.Errorf("sock_diag: %w", syscall.Errno(-errno))
					}
				}
				return errors.New("sock_diag: error reply")
			case sockDiagByFamily:
				if len(m.Data) < inetDiagMsgLen {
					continue
				}
				// struct inet_diag_msg: the source port, big-endian, at
				// offset 4; the inode at offset 68.
				found(binary.BigEndian.Uint16(m.Data[4:]), ne.Uint32(m.Data[68:]))
			}
		}
	}
}

// portListening reports whether any socket listens on TCP port.
func portListening(port int) (bool, error) {
	inodes, err := listeningInodes(port)
	return len(inodes) > 0, err
}

// listensOn reports whether pid itself holds a socket listening on TCP
// port. It reads only that process's descriptors.
func listensOn(pid, port int) bool {
	inodes, err := listeningInodes(port)
	if err != nil || len(inodes) == 0 {
		return false
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		link, err := os.Readlink(dir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		inode, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
		if err == nil && inodes[inode] {
			return true
		}
	}
	return false
}
