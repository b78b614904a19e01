package OpTable;

# Every map operation as a code reference, called either as a method or through its
# keyword, so that one test body can run in both modes:
#
#   my $op = OpTable::ops($variant, 'kw');      # or 'method'
#   $op->{put_ttl}->($map, $key, $value, 30);
#
# Keyword subs are compiled by a string eval that starts with `use CLASS;`, so the
# keywords are in scope exactly there. Operations that are methods only (set_multi,
# get_with_ttl, get_multi, stats) are methods in both modes. List-returning ones
# return their list (call them in list context) and have a "NAME_scalar" twin that
# calls them in scalar context.

use strict;
use warnings;

# name => arity (not counting the map)
my %ARITY = (
    put => 2, get => 1, remove => 1, exists => 1, add => 2, update => 2, swap => 2,
    take => 1, get_or_set => 2, cas => 3, cas_take => 2,
    incr => 1, decr => 1, incr_by => 2, max => 2, min => 2,
    put_ttl => 3, add_ttl => 3, update_ttl => 3, ttl_remaining => 1, touch => 1,
    persist => 1, set_ttl => 2, flush_expired => 0, flush_expired_partial => 1,
    pop => 0, shift => 0, drain => 1, clear => 0, keys => 0, values => 0, items => 0,
    size => 0, max_size => 0, ttl => 0, stat_evictions => 0, stat_expired => 0,
    capacity => 0, arena_used => 0,
);
my %LIST = map { $_ => 1 } qw(flush_expired_partial pop shift drain keys values items);
my %COUNTER = map { $_ => 1 } qw(incr decr incr_by max min);
my @METHOD_ONLY = qw(set_multi get_with_ttl get_multi stats);

my %CACHE;

sub ops {
    my ($v, $mode) = @_;
    return $CACHE{"$v->{name}/$mode"} //= _build($v, $mode);
}

sub _build {
    my ($v, $mode) = @_;
    my %op;
    for my $name (sort keys %ARITY) {
        next if $COUNTER{$name} && !$v->{counters};
        my $n = $ARITY{$name};
        if ($mode eq 'method') {
            $op{$name} = sub { my $m = shift; $m->$name(@_) };
            $op{"${name}_scalar"} = sub { my $m = shift; my $r = $m->$name(@_); $r } if $LIST{$name};
            next;
        }
        my $args = join '', map { ", \$_[$_]" } 1 .. $n;
        my $call = "shm_$v->{prefix}_$name \$_[0]$args";
        my $code = "use $v->{class}; sub { $call }";
        $op{$name} = eval $code or die "compiling $name for $v->{name}: $@";
        if ($LIST{$name}) {
            $op{"${name}_scalar"} = eval "use $v->{class}; sub { my \$r = $call; \$r }"
                or die "compiling ${name}_scalar for $v->{name}: $@";
        }
    }
    for my $name (@METHOD_ONLY) {
        $op{$name} = sub { my $m = shift; $m->$name(@_) };
    }
    $op{get_with_ttl_scalar} = sub { my $m = shift; my $r = $m->get_with_ttl(@_); $r };
    return \%op;
}

# Waits until the coarse wall clock has passed the second after now (so that an entry
# written with a TTL of 1 second before this call has expired): at most ~1.05 s.
sub wait_next_second {
    require Time::HiRes;
    my $s = int Time::HiRes::time();
    my $left = $s + 1.05 - Time::HiRes::time();
    Time::HiRes::sleep($left) if $left > 0;
}

1;
