import { dirname, resolve } from 'node:path'
import ts from 'typescript'

/**
 * What a handler's code can reach, read from the source by the TypeScript checker
 * rather than from a test run: every path counts, the rare ones (a signing failure,
 * a report-mode reuse) as much as the common ones.
 *
 * The walk starts at the handler module's top level and follows every reference to a
 * function, variable, class or class member declared under functions/. A call through
 * an interface (`deps.signer.sign()`) reaches the member of that name in every class
 * the walk has reached (is constructed or named): the implementations that can be
 * behind it. It over-approximates (a function reached is walked whole), never
 * under-approximates, for code that calls through named members.
 */
export interface Reach {
  /** Methods of the store ports called: `rotate`, `appendEvent`, ... */
  readonly storeMethods: ReadonlySet<string>
  /** KMS commands constructed: `SignCommand`, `DecryptCommand`, ... */
  readonly kmsCommands: ReadonlySet<string>
}

/** The store ports: an interface per concern, each method one set of DynamoDB actions. */
const STORE_PORTS: Readonly<Record<string, readonly string[]>> = {
  'functions/core/ports.ts': ['SessionStore', 'UserStore', 'LoginAttempts', 'EventOutbox'],
  'functions/core/dpop.ts': ['DpopReplayStore'],
  'functions/core/regions.ts': ['RegionSwitch'],
  // Adapters' own stores: the grace keys' directory and the envelope keys' pairs.
  'functions/adapters/kms-grace-keys.ts': ['GraceKeyDirectory'],
  'functions/adapters/envelope-signer.ts': ['EnvelopeKeyStore'],
}

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../..')
const OWN = `${ROOT}/functions/`
const DYNAMODB_ADAPTERS = `${ROOT}/functions/adapters/dynamodb/`

/** A checker over the given handler modules (paths from the project root). */
export function reachability(entries: readonly string[]): (entry: string) => Reach {
  const config = ts.readConfigFile(`${ROOT}/tsconfig.json`, ts.sys.readFile)
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT)
  const program = ts.createProgram(
    entries.map((entry) => `${ROOT}/${entry}`),
    { ...options, noEmit: true },
  )
  const checker = program.getTypeChecker()

  // The ports' method declarations: each to its port and method name.
  const portMethods = new Map<ts.Node, { readonly port: string; readonly method: string }>()
  for (const [file, names] of Object.entries(STORE_PORTS)) {
    const source = program.getSourceFile(`${ROOT}/${file}`)
    if (!source) throw new Error(`${file} is not in the program`)
    for (const port of names) {
      const declaration = source.statements.find(
        (node): node is ts.InterfaceDeclaration =>
          ts.isInterfaceDeclaration(node) && node.name.text === port,
      )
      if (!declaration) throw new Error(`${file} declares no interface ${port}`)
      for (const member of declaration.members) {
        if (member.name && ts.isIdentifier(member.name)) {
          portMethods.set(member, { port, method: member.name.text })
        }
      }
    }
  }
  /**
   * The store ports a DynamoDB adapter implements (its `implements` clause); none for
   * any other class, such as the authorizer's in-memory replay cache.
   */
  const portsOf = (cls: ts.ClassLikeDeclaration): string[] =>
    !cls.getSourceFile().fileName.startsWith(DYNAMODB_ADAPTERS)
      ? []
      : (cls.heritageClauses ?? [])
          .filter((clause) => clause.token === ts.SyntaxKind.ImplementsKeyword)
          .flatMap((clause) => clause.types.map((type) => type.expression.getText()))
          .filter((name) => Object.values(STORE_PORTS).flat().includes(name))

  return (entry) => {
    const source = program.getSourceFile(`${ROOT}/${entry}`)
    if (!source) throw new Error(`${entry} is not in the program`)
    /** `port.method` called, through the port or on an adapter's own type. */
    const calls = new Set<string>()
    const kmsCommands = new Set<string>()
    const visited = new Set<ts.Node>()
    const queue: ts.Node[] = []
    const classes = new Set<ts.ClassLikeDeclaration>()
    const dispatched = new Set<string>()

    const enqueue = (node: ts.Node) => {
      if (visited.has(node)) return
      visited.add(node)
      queue.push(node)
    }
    const memberName = (member: ts.ClassElement) =>
      member.name && (ts.isIdentifier(member.name) || ts.isPrivateIdentifier(member.name))
        ? member.name.text
        : undefined
    const reachClass = (cls: ts.ClassLikeDeclaration) => {
      if (classes.has(cls)) return
      classes.add(cls)
      for (const member of cls.members) {
        // What runs when it is constructed, and what a call through an interface may run.
        const runsAtConstruction =
          ts.isConstructorDeclaration(member) ||
          ts.isClassStaticBlockDeclaration(member) ||
          (ts.isPropertyDeclaration(member) && member.initializer !== undefined)
        const name = memberName(member)
        if (runsAtConstruction || (name !== undefined && dispatched.has(name))) enqueue(member)
      }
      for (const clause of cls.heritageClauses ?? []) {
        if (clause.token !== ts.SyntaxKind.ExtendsKeyword) continue
        for (const type of clause.types) follow(type.expression)
      }
    }
    const dispatch = (name: string) => {
      if (dispatched.has(name)) return
      dispatched.add(name)
      for (const cls of classes) {
        for (const member of cls.members) if (memberName(member) === name) enqueue(member)
      }
    }

    /** Follows what the identifier at `node` refers to. */
    const follow = (node: ts.Node) => {
      let symbol = ts.isShorthandPropertyAssignment(node.parent)
        ? checker.getShorthandAssignmentValueSymbol(node.parent)
        : checker.getSymbolAtLocation(node)
      if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol)
      for (const declaration of symbol?.declarations ?? []) {
        const file = declaration.getSourceFile().fileName
        const port = portMethods.get(declaration)
        if (port) calls.add(`${port.port}.${port.method}`)
        if (file.includes('/@aws-sdk/client-kms/') && symbol?.name.endsWith('Command')) {
          kmsCommands.add(symbol.name)
        }
        if (!file.startsWith(OWN)) continue
        if (ts.isClassDeclaration(declaration) || ts.isClassExpression(declaration)) {
          reachClass(declaration)
        } else if (ts.isClassElement(declaration) && ts.isClassLike(declaration.parent)) {
          // A store method called on an adapter's own type rather than through its port
          // (an adapter calling its own methods is what its grants already cover).
          const name = memberName(declaration)
          const calledOnOther =
            ts.isPropertyAccessExpression(node.parent) &&
            node.parent.name === node &&
            node.parent.expression.kind !== ts.SyntaxKind.ThisKeyword
          if (name && calledOnOther) {
            for (const port of portsOf(declaration.parent)) {
              if ([...portMethods.values()].some((m) => m.port === port && m.method === name)) {
                calls.add(`${port}.${name}`)
              }
            }
          }
          reachClass(declaration.parent)
          enqueue(declaration)
        } else if (ts.isMethodSignature(declaration) || ts.isPropertySignature(declaration)) {
          if (ts.isIdentifier(declaration.name)) dispatch(declaration.name.text)
        } else if (ts.isFunctionDeclaration(declaration) || ts.isVariableDeclaration(declaration)) {
          enqueue(declaration)
        }
      }
    }

    const walk = (node: ts.Node): void => {
      // Types do not run.
      if (
        ts.isTypeNode(node) ||
        ts.isInterfaceDeclaration(node) ||
        ts.isTypeAliasDeclaration(node)
      ) {
        return
      }
      if (ts.isIdentifier(node) || ts.isPrivateIdentifier(node)) follow(node)
      ts.forEachChild(node, walk)
    }

    // The handler module's top level runs at cold start; its declarations only when used.
    for (const statement of source.statements) {
      if (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement)) continue
      enqueue(statement)
    }
    for (let node = queue.shift(); node; node = queue.shift()) ts.forEachChild(node, walk)
    // A call through a port reaches the table only if the bundle holds an adapter of that
    // port: the plain authorizer shares strict mode's code, but not its DynamoDB store.
    const adapted = new Set([...classes].flatMap(portsOf))
    const storeMethods = new Set(
      [...calls]
        .map((call) => call.split('.') as [string, string])
        .filter(([port]) => adapted.has(port))
        .map(([, method]) => method),
    )
    return { storeMethods, kmsCommands }
  }
}
