#!/usr/bin/perl
# A Perl AMQP 0-9 client session, as AnyEvent::RabbitMQ users write it (Net::AMQP opens with the
# AMQP 0-9 header "AMQP" 1 1 0 9). Usage: anyevent-rabbitmq.pl HOST PORT. Prints one line per
# step; exits 0 once the whole session has worked, 1 on any failure.
use strict;
use warnings;
use AnyEvent;
use AnyEvent::RabbitMQ;

my ($host, $port) = @ARGV;
$| = 1;
my $done = AnyEvent->condvar;
my $fail = sub { $done->send("FAIL: @_") };
my $guard = AnyEvent->timer(after => 15, cb => sub { $fail->('timed out') });
my $body = 'hello from AnyEvent::RabbitMQ';

my $ar = AnyEvent::RabbitMQ->new->load_xml_spec()->connect(
    host => $host, port => $port, user => 'guest', pass => 'guest', vhost => '/', timeout => 5,
    on_success => sub {
        my $ar = shift;
        print "connected: $ar->{_server_properties}{product}\n";
        $ar->open_channel(
            on_failure => $fail,
            on_success => sub {
                my $ch = shift;
                $ch->declare_queue(
                    queue => '', exclusive => 1, on_failure => $fail,
                    on_success => sub {
                        my $queue = shift->method_frame->queue;
                        print "declared: $queue\n";
                        $ch->confirm(
                            on_failure => $fail,
                            on_success => sub {
                                $ch->publish(
                                    exchange => '', routing_key => $queue, body => $body,
                                    on_nack => sub { $fail->('publish nacked') },
                                    on_ack => sub {
                                        print "confirmed\n";
                                        $ch->consume(
                                            queue => $queue, no_ack => 0, on_failure => $fail,
                                            on_consume => sub {
                                                my $msg = shift;
                                                my $got = $msg->{body}->payload;
                                                return $fail->("got '$got'") unless $got eq $body;
                                                $ch->ack(delivery_tag => $msg->{deliver}->method_frame->delivery_tag);
                                                print "consumed: $got\n";
                                                $ar->close(on_success => sub { $done->send('OK') }, on_failure => $fail);
                                            },
                                        );
                                    },
                                );
                            },
                        );
                    },
                );
            },
        );
    },
    on_failure => $fail,
    on_read_failure => $fail,
    on_return => sub { $fail->('returned') },
    on_close => sub {
        my $close = shift->method_frame;
        $fail->('closed by the broker: ' . $close->reply_code . ' ' . $close->reply_text);
    },
);

my $result = $done->recv;
print "$result\n";
exit($result eq 'OK' ? 0 : 1);
