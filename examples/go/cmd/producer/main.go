// Queues each argument as a job: producer [-lane L] [-priority N] MESSAGE...
// The daemon is $DISPENSERD_URL (default http://127.0.0.1:8282), its token $DISPENSERD_TOKEN, and
// $DISPENSERD_CA a certificate to trust for an https:// daemon with a self-signed one.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"example.com/dispenserd-examples/dispenserd"
)

func main() {
	lane := flag.String("lane", "", "the lane (default main)")
	priority := flag.Int("priority", -1, "lower is served first (default 512)")
	flag.Parse()
	client, err := dispenserd.FromEnvironment()
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err)
		os.Exit(1)
	}
	for _, message := range flag.Args() {
		message := message
		job := dispenserd.NewJob{Message: &message, Lane: *lane}
		if *priority >= 0 {
			p := uint32(*priority)
			job.Priority = &p
		}
		reply, err := client.Schedule(context.Background(), job)
		if err != nil {
			fmt.Fprintln(os.Stderr, "producer:", err)
			os.Exit(1)
		}
		fmt.Printf("queued job %d: %s\n", reply.JobNum, message)
	}
}
