package bench

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
)

// sourceAddr is the loopback address client i dials from: 127.1.x.y, one
// address per client (up to 64 000), so that per-IP limits of the gateway
// see many small clients rather than one huge one.
func sourceAddr(i int) *net.TCPAddr {
	i %= 250 * 256
	return &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(i%250+1))}
}

// rssBytes reads VmRSS of pid from /proc; 0 when unavailable.
func rssBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "VmRSS:" {
			kb, _ := strconv.ParseInt(string(f[1]), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// settle returns freed memory to the OS before an in-process RSS reading,
// so that two readings differ by live memory rather than GC timing.
func settle(inProcess bool) {
	if inProcess {
		runtime.GC()
		debug.FreeOSMemory()
	}
}
