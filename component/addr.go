package component

import (
	"fmt"
	"net"
	"strconv"
)

// CheckPort checks a port number as text: decimal, 0 to 65535.
func CheckPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || port == "" {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// CheckHostPort checks a listen or dial address "host:port" as validate
// can without using it: it splits, and its port is a number from 0 to
// 65535 (no service names), so 127.0.0.1:99999 and 0.0.0.0:abc fail at
// validate rather than at run.
func CheckHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port such as 127.0.0.1:9108, got %q", addr)
	}
	if err := CheckPort(port); err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	return nil
}
