// A session with the Go client (Debian golang-github-rabbitmq-amqp091-go-dev): connect, qos,
// declare, confirm, publish, consume, ack, close. Usage: go run amqp091_session.go AMQP_URL
// (GOPATH=/usr/share/gocode GO111MODULE=off). Prints OK and exits 0 when it all worked.
package main

import (
	"fmt"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func must(err error, what string) {
	if err != nil {
		fmt.Println("FAIL", what, err)
		os.Exit(1)
	}
}

func main() {
	conn, err := amqp.Dial(os.Args[1])
	must(err, "dial")
	fmt.Println("product:", conn.Properties["product"])
	ch, err := conn.Channel()
	must(err, "channel")
	must(ch.Qos(10, 0, false), "qos")
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	must(err, "declare")
	must(ch.Confirm(false), "confirm")
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	must(ch.Publish("", q.Name, true, false, amqp.Publishing{Body: []byte("hello from Go"), DeliveryMode: amqp.Persistent}), "publish")
	select {
	case c := <-confirms:
		if !c.Ack {
			must(fmt.Errorf("nacked"), "confirm")
		}
	case <-time.After(10 * time.Second):
		must(fmt.Errorf("timed out"), "confirm")
	}
	deliveries, err := ch.Consume(q.Name, "", false, false, false, false, nil)
	must(err, "consume")
	select {
	case d := <-deliveries:
		if string(d.Body) != "hello from Go" {
			must(fmt.Errorf("got %q", d.Body), "delivery")
		}
		must(d.Ack(false), "ack")
	case <-time.After(10 * time.Second):
		must(fmt.Errorf("timed out"), "consume")
	}
	must(ch.Close(), "channel close")
	must(conn.Close(), "close")
	fmt.Println("OK")
}
