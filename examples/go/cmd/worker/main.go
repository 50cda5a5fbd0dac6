// A consumer loop: worker [-lane L] [-lease S] [-max-jobs N]
//
// Takes jobs under a lease, works on each, and acks it when the work succeeded or releases it (to
// be tried again after -retry-delay seconds) when it failed. A job whose worker dies is not lost:
// its lease runs out and the daemon hands it to another worker. While the daemon cannot be reached
// (not started yet, restarting) it waits and tries again, up to 5 s apart.
//
// The "work" here is a stand-in: a message starting with "fail-once" fails the first time this
// worker sees it. Replace work with yours.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"example.com/dispenserd-examples/dispenserd"
)

var seen = map[string]bool{}

func work(job *dispenserd.Job) error {
	if strings.HasPrefix(job.Message, "fail-once") && !seen[job.Message] {
		seen[job.Message] = true
		return errors.New("failed on the first try")
	}
	return nil
}

func main() {
	lane := flag.String("lane", "", "the lane (default main)")
	lease := flag.Float64("lease", 60, "seconds each job is leased for")
	retryDelay := flag.Float64("retry-delay", 0, "seconds a failed job waits before it is tried again")
	maxJobs := flag.Int("max-jobs", 0, "stop after acking this many (0: never)")
	flag.Parse()
	client, err := dispenserd.FromEnvironment()
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	acked := 0
	pause := 200 * time.Millisecond
	for ctx.Err() == nil && (*maxJobs == 0 || acked < *maxJobs) {
		job, err := client.Receive(ctx, dispenserd.ReceiveOptions{Lane: *lane, Lease: *lease, Block: true, Timeout: 5})
		var replyErr *dispenserd.Error
		switch {
		case errors.As(err, &replyErr):
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		case err != nil:
			// Not started yet, restarting, or gone for a while: a job leased before the break
			// comes back to the lane when its lease runs out.
			if ctx.Err() != nil {
				return
			}
			fmt.Printf("cannot reach dispenserd (%v); trying again in %v\n", err, pause)
			time.Sleep(pause)
			if pause *= 2; pause > 5*time.Second {
				pause = 5 * time.Second
			}
			continue
		}
		pause = 200 * time.Millisecond
		if job == nil {
			continue
		}
		if err := work(job); err != nil {
			if err := client.Release(ctx, job.Hash, job.LeaseToken, *retryDelay); err != nil {
				fmt.Printf("could not release job %d: %v\n", job.JobNum, err)
				continue
			}
			fmt.Printf("released job %d (%s): %v\n", job.JobNum, job.Message, err)
			continue
		}
		if err := client.Ack(ctx, job.Hash, job.LeaseToken); err != nil {
			// Code 9: the lease ran out before the ack; the job went back and may run again.
			fmt.Printf("could not ack job %d: %v\n", job.JobNum, err)
			continue
		}
		acked++
		fmt.Printf("done job %d (%s)\n", job.JobNum, job.Message)
	}
}
