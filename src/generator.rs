//! Generators: coroutines that take no input, used as iterators.

use crate::stack;
#[cfg(feature = "default-stack")]
use crate::stack::DefaultStack;
use crate::{Coroutine, CoroutineResult, Yielder};

macro_rules! generator_struct {
    ($(= $return_default:ty, = $stack_default:ty)?) => {
        /// An [`Iterator`] over the values a function yields from its own
        /// stack, from any depth of its call stack. What the function returns
        /// is kept for [`return_value`](Self::return_value).
        ///
        /// ```
        /// use stackswitch::{Generator, Yielder};
        ///
        /// enum Tree {
        ///     Leaf(u32),
        ///     Node(Box<Tree>, Box<Tree>),
        /// }
        ///
        /// // A recursive walk that yields from whatever depth it is at.
        /// fn walk(tree: &Tree, yielder: &Yielder<(), u32>) -> usize {
        ///     match tree {
        ///         Tree::Leaf(value) => {
        ///             yielder.suspend(*value);
        ///             1
        ///         }
        ///         Tree::Node(left, right) => walk(left, yielder) + walk(right, yielder),
        ///     }
        /// }
        ///
        /// let tree = Tree::Node(
        ///     Box::new(Tree::Node(Box::new(Tree::Leaf(1)), Box::new(Tree::Leaf(2)))),
        ///     Box::new(Tree::Leaf(3)),
        /// );
        /// let mut leaves = Generator::new(move |yielder| walk(&tree, yielder));
        /// assert_eq!(leaves.by_ref().collect::<Vec<_>>(), [1, 2, 3]);
        /// assert_eq!(leaves.return_value(), Some(&3));
        /// ```
        pub struct Generator<
            Yield,
            Return $(= $return_default)?,
            Stack: stack::Stack $(= $stack_default)?,
        > {
            coroutine: Coroutine<(), Yield, Return, Stack>,
            returned: Option<Return>,
        }
    };
}
#[cfg(feature = "default-stack")]
generator_struct!(= (), = DefaultStack);
#[cfg(not(feature = "default-stack"))]
generator_struct!();

#[cfg(feature = "default-stack")]
impl<Yield, Return> Generator<Yield, Return, DefaultStack> {
    /// A generator running `func` on a new [`DefaultStack`].
    ///
    /// ```
    /// use stackswitch::Generator;
    ///
    /// let squares = Generator::new(|yielder| {
    ///     for i in 1..=4u32 {
    ///         yielder.suspend(i * i);
    ///     }
    /// });
    /// assert_eq!(squares.sum::<u32>(), 30);
    /// ```
    pub fn new<F>(func: F) -> Self
    where
        F: FnOnce(&Yielder<(), Yield>) -> Return + 'static,
        Yield: 'static,
        Return: 'static,
    {
        Self::with_stack(DefaultStack::default(), func)
    }
}

impl<Yield, Return, Stack: stack::Stack> Generator<Yield, Return, Stack> {
    /// A generator running `func` on `stack`.
    ///
    /// ```
    /// use stackswitch::stack::DefaultStack;
    /// use stackswitch::Generator;
    ///
    /// let stack = DefaultStack::new(32 * 1024).unwrap();
    /// let words = Generator::with_stack(stack, |yielder| {
    ///     "a small stack".split(' ').for_each(|word| {
    ///         yielder.suspend(word);
    ///     })
    /// });
    /// assert_eq!(words.collect::<Vec<_>>(), ["a", "small", "stack"]);
    /// ```
    pub fn with_stack<F>(stack: Stack, func: F) -> Self
    where
        F: FnOnce(&Yielder<(), Yield>) -> Return + 'static,
        Yield: 'static,
        Return: 'static,
        Stack: 'static,
    {
        Coroutine::with_stack(stack, move |yielder, ()| func(yielder)).into()
    }

    /// What the function returned, once the iterator is exhausted.
    pub fn return_value(&self) -> Option<&Return> {
        self.returned.as_ref()
    }

    /// Takes what the function returned, once the iterator is exhausted.
    ///
    /// ```
    /// use stackswitch::Generator;
    ///
    /// let mut lines = Generator::new(|yielder| {
    ///     let mut count = 0;
    ///     for line in "one\ntwo".lines() {
    ///         yielder.suspend(line);
    ///         count += 1;
    ///     }
    ///     count
    /// });
    /// assert_eq!(lines.next(), Some("one"));
    /// assert_eq!(lines.next(), Some("two"));
    /// assert_eq!(lines.next(), None);
    /// assert_eq!(lines.into_return_value(), Some(2));
    /// ```
    pub fn into_return_value(self) -> Option<Return> {
        self.returned
    }

    /// The underlying coroutine.
    pub fn into_coroutine(self) -> Coroutine<(), Yield, Return, Stack> {
        self.coroutine
    }
}

impl<Yield, Return, Stack: stack::Stack> From<Coroutine<(), Yield, Return, Stack>>
    for Generator<Yield, Return, Stack>
{
    /// Iterates a coroutine that takes `()` input. A coroutine that has
    /// already completed yields nothing and has no return value here.
    fn from(coroutine: Coroutine<(), Yield, Return, Stack>) -> Self {
        Generator {
            coroutine,
            returned: None,
        }
    }
}

impl<Yield, Return, Stack: stack::Stack> Iterator for Generator<Yield, Return, Stack> {
    type Item = Yield;

    /// Resumes the function until it yields. A panic in it continues from
    /// here, after which the iterator is exhausted.
    fn next(&mut self) -> Option<Yield> {
        if self.coroutine.done() {
            return None;
        }
        match self.coroutine.resume(()) {
            CoroutineResult::Yield(value) => Some(value),
            CoroutineResult::Return(value) => {
                self.returned = Some(value);
                None
            }
        }
    }
}

impl<Yield, Return, Stack: stack::Stack> core::iter::FusedIterator
    for Generator<Yield, Return, Stack>
{
}
