package grpcapi

import "testing"

// Two open connections from one address are told apart by neither: both
// go uncounted rather than one being charged the other's bytes.
func TestConnBytes(t *testing.T) {
	var c connBytes
	a := c.add("10.0.0.1:5000", nil)
	if a == nil || c.lookup("10.0.0.1:5000") != a {
		t.Fatal("a connection's count is not found by its address")
	}
	if c.add("", nil) != nil {
		t.Error("a connection without an address was counted")
	}
	if c.add("10.0.0.1:5000", nil) != nil || c.lookup("10.0.0.1:5000") != nil {
		t.Error("a second connection from one address left a count to charge")
	}
	c.remove("10.0.0.1:5000", a) // the first closing does not forget the ambiguity
	if c.lookup("10.0.0.1:5000") != nil {
		t.Error("the ambiguous address got a count back")
	}
	b := c.add("10.0.0.2:6000", nil)
	c.remove("10.0.0.2:6000", b)
	if c.lookup("10.0.0.2:6000") != nil {
		t.Error("a closed connection's count is still found")
	}
}
