package vaulttest

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ClusterTimeout bounds every wait on a cluster (forming, failing over). It
// is generous: raft elections and plugin starts on a loaded 2-core machine
// running race-detector builds are slow, and a wait ends as soon as its
// condition holds.
const ClusterTimeout = 2 * time.Minute

// Cluster is a Vault HA cluster on loopback: Nodes share integrated (raft)
// storage, Nodes[0] is initialised first and the others join it with
// retry_join and are unsealed with the same key. Every node has a plugin
// directory of its own holding the same bankauth binary (same SHA-256), as
// an operator would install it on each machine.
type Cluster struct {
	Nodes     []*Server
	RootToken string
}

// StartCluster starts an n-node raft cluster and returns once it has an
// active node, every other node is an unsealed standby that forwards
// requests to it, and every node is a raft voter (so the cluster survives
// the loss of any one node when n >= 3).
func StartCluster(n int, opts Options) (*Cluster, error) {
	opts.Storage = "raft"
	opts.DataDir = ""
	c := &Cluster{}
	leader, err := newServer(opts, raftNode{id: "node1", member: true})
	if err != nil {
		return nil, err
	}
	c.Nodes = append(c.Nodes, leader)
	if err := leader.start(); err != nil {
		c.Close()
		return nil, err
	}
	if err := leader.initUnseal(); err != nil {
		c.Close()
		return nil, err
	}
	c.RootToken = leader.RootToken
	// New nodes become voters after server_stabilization_time (default
	// 10s) of good health; a shorter one makes the cluster ready sooner.
	if _, err := leader.Client.Logical().Write("sys/storage/raft/autopilot/configuration",
		map[string]any{"server_stabilization_time": "3s"}); err != nil {
		c.Close()
		return nil, fmt.Errorf("autopilot configuration: %w", err)
	}
	for i := 2; i <= n; i++ {
		s, err := newServer(opts, raftNode{id: fmt.Sprintf("node%d", i), retryJoin: []string{leader.Addr}, member: true})
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
		s.unsealKey, s.RootToken = leader.unsealKey, leader.RootToken
		if err := s.start(); err != nil {
			c.Close()
			return nil, err
		}
		if err := s.joinUnseal(); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.waitVoters(n); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.WaitActive(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// joinUnseal unseals a node that joins the cluster through retry_join. With
// a Shamir seal the join completes only when the node is given the unseal
// key, and the key is accepted only once the node has the leader's join
// challenge, so it is offered until the node reports itself unsealed.
func (s *Server) joinUnseal() error {
	s.Client.SetToken(s.RootToken)
	var last error
	err := s.waitFor(func() bool {
		st, err := s.Client.Sys().Unseal(s.unsealKey)
		if err != nil {
			last = err
			return false
		}
		return !st.Sealed
	})
	if err != nil {
		return fmt.Errorf("%s did not join and unseal (last error: %v): %w", s.Addr, last, err)
	}
	return nil
}

// waitFor polls cond every 200ms until it holds, ClusterTimeout passes or the
// server process exits.
func (s *Server) waitFor(cond func() bool) error {
	deadline := time.Now().Add(ClusterTimeout)
	for {
		if cond() {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("vault server %s exited; log:\n%s", s.Addr, tail(s.Log()))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s; log of %s:\n%s", ClusterTimeout, s.Addr, tail(s.Log()))
		}
	}
}

// waitVoters waits until autopilot on the active node reports a healthy
// cluster of n voters.
func (c *Cluster) waitVoters(n int) error {
	var last string
	err := c.Nodes[0].waitFor(func() bool {
		st, err := c.Nodes[0].Client.Sys().RaftAutopilotState()
		if err != nil || st == nil {
			last = fmt.Sprint(err)
			return false
		}
		last = st.String()
		return st.Healthy && len(st.Voters) == n
	})
	if err != nil {
		return fmt.Errorf("raft cluster did not get %d healthy voters (last state: %s): %w", n, last, err)
	}
	return nil
}

// Running lists the nodes that have not been stopped or killed.
func (c *Cluster) Running() []*Server {
	var out []*Server
	for _, s := range c.Nodes {
		if s.Running() {
			out = append(out, s)
		}
	}
	return out
}

// WaitActive waits until the running nodes agree on one of them as the
// active node and a request through every running node (standbys forward
// it) succeeds, and returns the active node.
func (c *Cluster) WaitActive() (*Server, error) {
	deadline := time.Now().Add(ClusterTimeout)
	var last error
	for time.Now().Before(deadline) {
		active, err := c.agreedActive()
		if err == nil {
			return active, nil
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	return nil, fmt.Errorf("no active node within %s: %w", ClusterTimeout, last)
}

// agreedActive returns the active node if every running node names it as
// leader and answers an authenticated request.
func (c *Cluster) agreedActive() (*Server, error) {
	running := c.Running()
	if len(running) == 0 {
		return nil, errors.New("no node is running")
	}
	var active *Server
	for _, s := range running {
		l, err := s.Client.Sys().Leader()
		if err != nil {
			return nil, fmt.Errorf("%s: sys/leader: %w", s.Addr, err)
		}
		if l.IsSelf {
			active = s
		}
	}
	if active == nil {
		return nil, errors.New("no running node is active")
	}
	for _, s := range running {
		l, err := s.Client.Sys().Leader()
		if err != nil || l.LeaderAddress != active.Addr {
			return nil, fmt.Errorf("%s does not yet name %s as leader", s.Addr, active.Addr)
		}
		if _, err := s.Client.Sys().ListMounts(); err != nil {
			return nil, fmt.Errorf("%s: a request through it failed: %w", s.Addr, err)
		}
	}
	return active, nil
}

// Standbys are the running nodes other than active.
func (c *Cluster) Standbys(active *Server) []*Server {
	var out []*Server
	for _, s := range c.Running() {
		if s != active {
			out = append(out, s)
		}
	}
	return out
}

// Logs is every node's log, for scans.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for _, s := range c.Nodes {
		b.WriteString(s.Log())
	}
	return b.String()
}

// LogPaths lists where the nodes' logs are.
func (c *Cluster) LogPaths() []string {
	out := make([]string, 0, len(c.Nodes))
	for _, s := range c.Nodes {
		out = append(out, s.LogPath)
	}
	return out
}

// Stop ends every node, keeping their files.
func (c *Cluster) Stop() {
	for _, s := range c.Nodes {
		s.Stop()
	}
}

// Close ends every node and removes their files.
func (c *Cluster) Close() {
	for _, s := range c.Nodes {
		s.Close()
	}
}

// tail is the end of a long log, enough to see why a wait failed.
func tail(log string) string {
	const max = 8000
	if len(log) > max {
		return "...\n" + log[len(log)-max:]
	}
	return log
}
