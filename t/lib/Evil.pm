package Evil;
# Arguments whose conversion runs user code (t/invocant.t, t/hostile-args.t).
# Evil->new($code, $str, $num): an overloaded object; $code runs whenever the argument
# is read as a string ($str) or as a number ($num).
# tie my $x, 'EvilTie', $code, $val: a tied scalar; $code runs on every FETCH.
use strict;
use warnings;
use overload
    '""' => sub { $_[0]{code}->(); $_[0]{str} },
    '0+' => sub { $_[0]{code}->(); $_[0]{num} },
    fallback => 1;
sub new { my ($c, $code, $str, $num) = @_; bless { code => $code, str => $str, num => $num }, $c }

package EvilTie;
sub TIESCALAR { my ($c, $code, $val) = @_; bless { code => $code, val => $val }, $c }
sub FETCH { $_[0]{code}->(); $_[0]{val} }
sub STORE { }

1;
