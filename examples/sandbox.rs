//! Running untrusted recursive code on a small stack, with stack overflow
//! turned into an error.
//!
//! An interpreter for a tiny language (integers, `if`, recursive functions)
//! evaluates programs that may recurse without bound, by accident or on
//! purpose. It runs on a coroutine with a small guard-paged stack. When a
//! program overflows it, the CPU faults on the guard page; a SIGSEGV handler,
//! running on its own alternate signal stack, sees that the fault is in the
//! sandbox's stack and redirects the coroutine (the `trap` API): the
//! coroutine's frames are discarded and it returns
//! `Err(StackOverflow)` to the host, which carries on and reuses the stack.
//!
//! Discarding frames is only sound if nothing on them needs dropping, so the
//! evaluator owns nothing and allocates nothing: it reads the program's
//! tokens (tokenized by the host, without recursion) through a borrow, which
//! `ScopedCoroutine` allows, and keeps function arguments in fixed arrays.
//!
//! Linux on x86-64 only (reading and rewriting the signal context is
//! per-CPU and per-OS; `tests/trap/` has the other CPUs).
//!
//! Run with `cargo run --example sandbox`.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn main() {
    sandbox::main();
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn main() {
    println!("the sandbox example runs on x86-64 Linux only");
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod sandbox {
    use std::cell::Cell;
    use std::sync::Once;

    use stackswitch::stack::DefaultStack;
    use stackswitch::trap::CoroutineTrapHandler;
    use stackswitch::{CoroutineResult, ScopedCoroutine, Yielder};

    // -----------------------------------------------------------------------
    // The language: tokens, a program, and an evaluator that owns nothing.
    // -----------------------------------------------------------------------

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Token<'s> {
        Number(i64),
        Name(&'s str),
        Symbol(&'static str),
    }

    const SYMBOLS: [&str; 14] = [
        "==", "<", "+", "-", "*", "/", "%", "(", ")", ",", "=", ";", "{", "}",
    ];
    const KEYWORDS: [&str; 4] = ["fn", "if", "then", "else"];
    const MAX_PARAMS: usize = 4;

    /// Why a program failed. No variant owns heap memory: an error may be
    /// built deep in the recursion, where allocating could overflow.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Error {
        /// At this token index.
        Syntax(usize),
        UnknownName(usize),
        WrongArgumentCount(usize),
        DivisionByZero,
        Overflow,
        StackOverflow,
        /// A fault that was not a stack overflow, at this address.
        Fault(usize),
    }

    struct Function<'s> {
        name: &'s str,
        params: Vec<&'s str>,
        /// Index of the body's first token.
        body: usize,
    }

    /// A tokenized program: `fn name(params) = body;` definitions, then one
    /// expression. Built by the host without recursion, so no source can
    /// overflow the host's stack.
    struct Program<'s> {
        tokens: Vec<Token<'s>>,
        functions: Vec<Function<'s>>,
        main: usize,
    }

    fn tokenize(source: &str) -> Result<Vec<Token<'_>>, Error> {
        let mut tokens = Vec::new();
        let mut rest = source.trim_start();
        while !rest.is_empty() {
            let len = if rest.starts_with(|c: char| c.is_ascii_digit()) {
                let len = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                let value = rest[..len].parse().map_err(|_| Error::Overflow)?;
                tokens.push(Token::Number(value));
                len
            } else if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
                let len = rest
                    .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .unwrap_or(rest.len());
                tokens.push(Token::Name(&rest[..len]));
                len
            } else {
                let symbol = SYMBOLS
                    .iter()
                    .find(|s| rest.starts_with(**s))
                    .ok_or(Error::Syntax(tokens.len()))?;
                tokens.push(Token::Symbol(symbol));
                symbol.len()
            };
            rest = rest[len..].trim_start();
        }
        Ok(tokens)
    }

    fn load(source: &str) -> Result<Program<'_>, Error> {
        let tokens = tokenize(source)?;
        let mut functions = Vec::new();
        let mut pos = 0;
        while tokens.get(pos) == Some(&Token::Name("fn")) {
            let Some(Token::Name(name)) = tokens.get(pos + 1).copied() else {
                return Err(Error::Syntax(pos + 1));
            };
            if tokens.get(pos + 2) != Some(&Token::Symbol("(")) {
                return Err(Error::Syntax(pos + 2));
            }
            pos += 3;
            let mut params = Vec::new();
            while let Some(Token::Name(param)) = tokens.get(pos).copied() {
                params.push(param);
                pos += 1;
                if tokens.get(pos) == Some(&Token::Symbol(",")) {
                    pos += 1;
                }
            }
            if params.len() > MAX_PARAMS {
                return Err(Error::WrongArgumentCount(pos));
            }
            if tokens.get(pos) != Some(&Token::Symbol(")"))
                || tokens.get(pos + 1) != Some(&Token::Symbol("="))
            {
                return Err(Error::Syntax(pos));
            }
            let body = pos + 2;
            let end = tokens[body..]
                .iter()
                .position(|t| *t == Token::Symbol(";"))
                .ok_or(Error::Syntax(tokens.len()))?;
            functions.push(Function { name, params, body });
            pos = body + end + 1;
        }
        Ok(Program {
            tokens,
            functions,
            main: pos,
        })
    }

    /// The values of the current function's parameters.
    #[derive(Clone, Copy)]
    struct Env<'a> {
        params: &'a [&'a str],
        args: &'a [i64],
    }

    /// A recursive-descent evaluator over the tokens. `live` is false in the
    /// branch of an `if` that is not taken: it is parsed, not run.
    struct Eval<'p, 's> {
        program: &'p Program<'s>,
        pos: usize,
    }

    impl<'s> Eval<'_, 's> {
        fn peek(&self) -> Option<Token<'s>> {
            self.program.tokens.get(self.pos).copied()
        }

        fn eat(&mut self, symbol: &str) -> bool {
            let found =
                matches!(self.peek(), Some(Token::Symbol(s)) | Some(Token::Name(s)) if s == symbol);
            if found {
                self.pos += 1;
            }
            found
        }

        fn expect(&mut self, symbol: &str) -> Result<(), Error> {
            if self.eat(symbol) {
                Ok(())
            } else {
                Err(Error::Syntax(self.pos))
            }
        }

        fn expr(&mut self, env: Env<'_>, live: bool) -> Result<i64, Error> {
            if self.eat("if") {
                let condition = self.expr(env, live)?;
                self.expect("then")?;
                let yes = self.expr(env, live && condition != 0)?;
                self.expect("else")?;
                let no = self.expr(env, live && condition == 0)?;
                return Ok(if condition != 0 { yes } else { no });
            }
            let left = self.sum(env, live)?;
            if self.eat("<") {
                return Ok((left < self.sum(env, live)?) as i64);
            }
            if self.eat("==") {
                return Ok((left == self.sum(env, live)?) as i64);
            }
            Ok(left)
        }

        fn sum(&mut self, env: Env<'_>, live: bool) -> Result<i64, Error> {
            let mut value = self.product(env, live)?;
            loop {
                let op: fn(i64, i64) -> Option<i64> = if self.eat("+") {
                    i64::checked_add
                } else if self.eat("-") {
                    i64::checked_sub
                } else {
                    return Ok(value);
                };
                let right = self.product(env, live)?;
                value = if live {
                    op(value, right).ok_or(Error::Overflow)?
                } else {
                    0
                };
            }
        }

        fn product(&mut self, env: Env<'_>, live: bool) -> Result<i64, Error> {
            let mut value = self.unary(env, live)?;
            loop {
                let op = if self.eat("*") {
                    '*'
                } else if self.eat("/") {
                    '/'
                } else if self.eat("%") {
                    '%'
                } else {
                    return Ok(value);
                };
                let right = self.unary(env, live)?;
                value = match op {
                    _ if !live => 0,
                    '/' | '%' if right == 0 => return Err(Error::DivisionByZero),
                    '/' => value.checked_div(right).ok_or(Error::Overflow)?,
                    '%' => value.checked_rem(right).ok_or(Error::Overflow)?,
                    _ => value.checked_mul(right).ok_or(Error::Overflow)?,
                };
            }
        }

        fn unary(&mut self, env: Env<'_>, live: bool) -> Result<i64, Error> {
            if self.eat("-") {
                return self.unary(env, live)?.checked_neg().ok_or(Error::Overflow);
            }
            let at = self.pos;
            match self.peek() {
                Some(Token::Number(value)) => {
                    self.pos += 1;
                    Ok(value)
                }
                Some(Token::Symbol("(")) => {
                    self.pos += 1;
                    let value = self.expr(env, live)?;
                    self.expect(")")?;
                    Ok(value)
                }
                Some(Token::Name(name)) if !KEYWORDS.contains(&name) => {
                    self.pos += 1;
                    if self.eat("(") {
                        self.call(name, at, env, live)
                    } else {
                        let index = env.params.iter().position(|p| *p == name);
                        let value = index.map(|i| env.args[i]);
                        value.ok_or(Error::UnknownName(at))
                    }
                }
                _ => Err(Error::Syntax(at)),
            }
        }

        /// A call, after its `(`: arguments, then the body, recursively.
        fn call(&mut self, name: &str, at: usize, env: Env<'_>, live: bool) -> Result<i64, Error> {
            let mut args = [0; MAX_PARAMS];
            let mut count = 0;
            if !self.eat(")") {
                loop {
                    let value = self.expr(env, live)?;
                    *args.get_mut(count).ok_or(Error::WrongArgumentCount(at))? = value;
                    count += 1;
                    if self.eat(")") {
                        break;
                    }
                    self.expect(",")?;
                }
            }
            let function = self.program.functions.iter().find(|f| f.name == name);
            let function = function.ok_or(Error::UnknownName(at))?;
            if function.params.len() != count {
                return Err(Error::WrongArgumentCount(at));
            }
            if !live {
                return Ok(0);
            }
            let mut body = Eval {
                program: self.program,
                pos: function.body,
            };
            let env = Env {
                params: &function.params,
                args: &args[..count],
            };
            let value = body.expr(env, true)?;
            body.expect(";")?;
            Ok(value)
        }
    }

    // -----------------------------------------------------------------------
    // The sandbox: a small stack, and a fault handler that recovers from
    // overflowing it.
    // -----------------------------------------------------------------------

    type Outcome = Result<i64, Error>;

    thread_local! {
        /// The sandbox this thread is running, for the signal handler.
        static RUNNING: Cell<Option<CoroutineTrapHandler<Outcome>>> = const { Cell::new(None) };
    }

    /// Runs on the alternate signal stack when the process faults.
    extern "C" fn on_fault(signal: i32, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
        let context = context.cast::<libc::ucontext_t>();
        // SAFETY: the kernel passes a valid siginfo and ucontext to an
        // SA_SIGINFO handler; we only touch them during the handler.
        let (gregs, fault_addr) = unsafe {
            (
                &mut (*context).uc_mcontext.gregs,
                (*info).si_addr() as usize,
            )
        };
        let stack_ptr = gregs[libc::REG_RSP as usize] as usize;
        match RUNNING.with(Cell::get) {
            Some(handler) if handler.stack_ptr_in_bounds(stack_ptr) => {
                // A fault inside the stack's own bounds is the guard page.
                let error = if handler.stack_ptr_in_bounds(fault_addr) {
                    Error::StackOverflow
                } else {
                    Error::Fault(fault_addr)
                };
                // SAFETY: the fault happened in this thread's running sandbox,
                // whose frames own nothing, and every register of `regs` is
                // written into the context, taking effect when we return.
                let regs = unsafe { handler.setup_trap_handler(move || Err(error)) };
                gregs[libc::REG_RIP as usize] = regs.rip as i64;
                gregs[libc::REG_RSP as usize] = regs.rsp as i64;
                gregs[libc::REG_RBP as usize] = regs.rbp as i64;
                gregs[libc::REG_RDI as usize] = regs.rdi as i64;
                gregs[libc::REG_RSI as usize] = regs.rsi as i64;
            }
            // Not the sandbox: a real bug in the host. Restore the default
            // action, so that the fault repeats and kills the process.
            // SAFETY: `signal` is async-signal-safe.
            _ => unsafe {
                libc::signal(signal, libc::SIG_DFL);
            },
        }
    }

    /// Installs the fault handler (once) and gives this thread an alternate
    /// signal stack: a stack overflow leaves no stack to handle it on.
    fn install_fault_handler() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            for signal in [libc::SIGSEGV, libc::SIGBUS] {
                // SAFETY: a zeroed sigaction is valid; we fill in what we use.
                unsafe {
                    let mut action: libc::sigaction = std::mem::zeroed();
                    action.sa_sigaction = on_fault as *const () as usize;
                    action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                    libc::sigemptyset(&mut action.sa_mask);
                    assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
                }
            }
        });
        const ALT_STACK_SIZE: usize = 64 * 1024;
        // Leaked: the thread may take a signal until it exits.
        let alt_stack = Box::leak(vec![0u8; ALT_STACK_SIZE].into_boxed_slice());
        let stack = libc::stack_t {
            ss_sp: alt_stack.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: ALT_STACK_SIZE,
        };
        // SAFETY: `alt_stack` lives for the rest of the process.
        assert_eq!(
            unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) },
            0
        );
    }

    /// Runs `program` on `stack`.
    fn run(program: &Program<'_>, stack: &mut DefaultStack) -> Outcome {
        let sandbox = ScopedCoroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| {
            let mut eval = Eval {
                program,
                pos: program.main,
            };
            let no_params = Env {
                params: &[],
                args: &[],
            };
            let value = eval.expr(no_params, true)?;
            match eval.peek() {
                None => Ok(value),
                Some(_) => Err(Error::Syntax(eval.pos)),
            }
        });
        sandbox.scope(|mut sandbox| {
            RUNNING.with(|running| running.set(Some(sandbox.trap_handler())));
            let result = sandbox.resume(());
            RUNNING.with(|running| running.set(None));
            match result {
                CoroutineResult::Return(outcome) => outcome,
                CoroutineResult::Yield(()) => unreachable!("the sandbox never suspends"),
            }
        })
    }

    const SANDBOX_STACK_SIZE: usize = 512 * 1024;

    pub fn main() {
        install_fault_handler();
        let mut stack = DefaultStack::new(SANDBOX_STACK_SIZE).unwrap();
        let deep_nesting = format!("{}1{}", "(1 + ".repeat(100_000), ")".repeat(100_000));
        let programs: [(&str, &str); 8] = [
            ("arithmetic", "1 + 2 * (3 - 4) % 3"),
            (
                "factorial",
                "fn fact(n) = if n < 2 then 1 else n * fact(n - 1); fact(20)",
            ),
            (
                "fibonacci",
                "fn fib(n) = if n < 2 then n else fib(n - 1) + fib(n - 2); fib(20)",
            ),
            (
                "shallow recursion",
                "fn down(n) = if n == 0 then 0 else 1 + down(n - 1); down(100)",
            ),
            (
                "deep recursion",
                "fn down(n) = if n == 0 then 0 else 1 + down(n - 1); down(1000000)",
            ),
            ("no base case", "fn forever(n) = forever(n + 1); forever(0)"),
            ("deep nesting", &deep_nesting),
            ("division by zero", "fn f(x) = 10 / x; f(0)"),
        ];
        for (name, source) in programs {
            let outcome = load(source).and_then(|program| run(&program, &mut stack));
            match outcome {
                Ok(value) => println!("{name}: {value}"),
                Err(error) => println!("{name}: error: {error:?}"),
            }
        }
        // A program that the host mistypes is still a plain error.
        println!("bad syntax: {:?}", load("fn (x) = 1; 2").err());
        println!(
            "the host survived every program, on a {} KiB stack",
            SANDBOX_STACK_SIZE / 1024
        );
    }
}
