// Package dispenserd is a small client of dispenserd's HTTP API (standard library only).
//
//	client := dispenserd.New("http://127.0.0.1:8282", "")
//	client.Schedule(ctx, dispenserd.NewJob{Message: "resize 1.png"})
//	job, err := client.Receive(ctx, dispenserd.ReceiveOptions{Lease: 30, Block: true, Timeout: 30})
//	if job != nil { client.Ack(ctx, job.Hash, job.LeaseToken) }
//
// Error replies are returned as *Error (with the reply's Code); a daemon that cannot be reached
// returns the net/http error, which a consumer loop waits out and retries.
package dispenserd

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// EmptyQueue is the code of a receive that found no job.
const EmptyQueue = 2

// Job is a job as a receive hands it out; LeaseToken and LeaseExpires are set when it is leased.
type Job struct {
	JobNum       int64  `json:"job_num"`
	Hash         string `json:"hash"`
	Timestamp    string `json:"timestamp"`
	Lane         string `json:"lane"`
	Priority     uint32 `json:"priority"`
	Message      string `json:"message"`
	LeaseExpires string `json:"lease_expires,omitempty"`
	LeaseToken   string `json:"lease_token,omitempty"`
}

// NewJob is a job to schedule: Message, or Arguments for a runner lane.
type NewJob struct {
	Message   *string                `json:"message,omitempty"`
	Arguments map[string]interface{} `json:"arguments,omitempty"`
	Lane      string                 `json:"lane,omitempty"`
	Priority  *uint32                `json:"priority,omitempty"`
	Delay     float64                `json:"delay,omitempty"`
}

// Scheduled is the answer to Schedule.
type Scheduled struct {
	JobNum int64  `json:"job_num"`
	Hash   string `json:"hash"`
}

// Error is an error reply: {"status":"error","code":N,"message":"..."}.
type Error struct {
	Code       int    `json:"code"`
	Message    string `json:"message"`
	HTTPStatus int    `json:"-"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (code %d, HTTP %d)", e.Message, e.Code, e.HTTPStatus)
}

// Client talks to one daemon.
type Client struct {
	URL   string
	Token string
	HTTP  *http.Client
}

// New makes a client of the daemon at baseURL; token is its auth_token ("" when off).
func New(baseURL, token string) *Client {
	return &Client{URL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{}}
}

// FromEnvironment makes a client from $DISPENSERD_URL (default http://127.0.0.1:8282),
// $DISPENSERD_TOKEN and $DISPENSERD_CA: for an https:// daemon with a self-signed certificate,
// that certificate (a PEM file), trusted beside the system's authorities.
func FromEnvironment() (*Client, error) {
	baseURL := os.Getenv("DISPENSERD_URL")
	if baseURL == "" {
		baseURL = "http://127.0.0.1:8282"
	}
	client := New(baseURL, os.Getenv("DISPENSERD_TOKEN"))
	if caFile := os.Getenv("DISPENSERD_CA"); caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("DISPENSERD_CA: no PEM certificate in %s", caFile)
		}
		client.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	return client, nil
}

// call POSTs body (or GETs when it is nil) and decodes the reply into out.
func (c *Client) call(ctx context.Context, path string, body interface{}, out interface{}) error {
	method := http.MethodGet
	var payload *bytes.Reader
	if body != nil {
		method = http.MethodPost
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		payload = bytes.NewReader(data)
	} else {
		payload = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, payload)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return fmt.Errorf("%s%s answered HTTP %d, not JSON: %w", c.URL, path, resp.StatusCode, err)
	}
	var head struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(raw, &head)
	if head.Status == "error" {
		replyErr := &Error{HTTPStatus: resp.StatusCode}
		if err := json.Unmarshal(raw, replyErr); err != nil {
			return err
		}
		return replyErr
	}
	return json.Unmarshal(raw, out)
}

// Schedule queues one job.
func (c *Client) Schedule(ctx context.Context, job NewJob) (*Scheduled, error) {
	var out Scheduled
	return &out, c.call(ctx, "/schedule", job, &out)
}

// ReceiveOptions: Lease > 0 leases the job for that many seconds; Block waits up to Timeout seconds.
type ReceiveOptions struct {
	Lane    string
	Lease   float64
	Block   bool
	Timeout float64
}

// Receive returns the next job, or nil when the lane is empty (or stayed empty for Timeout).
func (c *Client) Receive(ctx context.Context, o ReceiveOptions) (*Job, error) {
	body := map[string]interface{}{}
	if o.Lane != "" {
		body["lane"] = o.Lane
	}
	if o.Lease > 0 {
		body["lease"] = o.Lease
	}
	path := "/receive_noblock"
	if o.Block {
		path = "/receive_block"
		body["timeout"] = o.Timeout
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(o.Timeout*float64(time.Second))+10*time.Second)
		defer cancel()
	}
	var reply struct {
		Code int `json:"code"`
		Job
	}
	if err := c.call(ctx, path, body, &reply); err != nil {
		return nil, err
	}
	if reply.Code == EmptyQueue {
		return nil, nil
	}
	return &reply.Job, nil
}

// Ack: done with a leased job.
func (c *Client) Ack(ctx context.Context, hash, leaseToken string) error {
	return c.call(ctx, "/ack", map[string]interface{}{"hash": hash, "lease_token": leaseToken}, &struct{}{})
}

// Release puts a leased job back, after delay seconds.
func (c *Client) Release(ctx context.Context, hash, leaseToken string, delay float64) error {
	return c.call(ctx, "/release", map[string]interface{}{"hash": hash, "lease_token": leaseToken, "delay": delay}, &struct{}{})
}

// Touch extends a lease to lease seconds from now.
func (c *Client) Touch(ctx context.Context, hash, leaseToken string, lease float64) error {
	return c.call(ctx, "/touch", map[string]interface{}{"hash": hash, "lease_token": leaseToken, "lease": lease}, &struct{}{})
}

// JobState returns GET /job for a hash, decoded into a map.
func (c *Client) JobState(ctx context.Context, hash string) (map[string]interface{}, error) {
	out := map[string]interface{}{}
	return out, c.call(ctx, "/job?hash="+url.QueryEscape(hash), nil, &out)
}
