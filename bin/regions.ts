/**
 * `npm run regions -- lost|restore|status <region>`: the operators' switch of
 * `failover: 'adopt'` (docs/multi-region.md "Declaring a region lost"). Run it against the
 * table in any healthy region: the item replicates to the others. `--help` prints the usage.
 */
import { userInfo } from 'node:os'
import { parseArgs } from 'node:util'
import { DynamoRegionSwitch } from '../functions/adapters/dynamodb/regions.js'
import { systemClock } from '../functions/core/clock.js'
import { assertAwsAccess, explain, openTable } from './table-cli.js'

const USAGE =
  'usage: npm run regions -- lost|restore|status <region> [--by <name>] [--table <name>] [--endpoint <url>]'

const HELP = `${USAGE}

Commands:
  lost <region>      declare the region lost: with failover "adopt", the other regions
                     take over the sessions homed there whose refresh finds it not answering
  restore <region>   declare it back: its sessions' refreshes wait for it again (503, retry)
  status <region>    print the region's declaration

Options:
  --by <name>        who declares it, recorded with it (default: the OS user)
  --table <name>     a deployed table (in any healthy region: the declaration replicates),
                     with the usual AWS credentials and region
                     (default: the local table of a running \`npm start\`)
  --endpoint <url>   another DynamoDB endpoint
  -h, --help         show this help
`

/** An AWS region name, as lib/config.ts accepts it in `regions`. */
const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/

async function main() {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      by: { type: 'string' },
      table: { type: 'string' },
      endpoint: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) {
    process.stdout.write(HELP)
    return
  }
  const [command, region] = positionals
  if (!command || !region || positionals.length > 2) throw new Error(USAGE)
  if (!REGION.test(region)) throw new Error(`not an AWS region name: ${region}`)
  const target = openTable(values)
  const store = new DynamoRegionSwitch(target.client, target.table)
  const by = values.by ?? userInfo().username
  try {
    await assertAwsAccess(target)
    switch (command) {
      case 'lost':
      case 'restore': {
        const state = command === 'lost' ? 'lost' : 'restored'
        await store.declareRegion({ region, state, by, at: systemClock.now() })
        console.log(`declared ${region} ${state} (by ${by})`)
        break
      }
      case 'status': {
        const found = await store.findRegionDeclaration(region)
        console.log(
          found
            ? `${region}: ${found.state} (by ${found.by} at ${new Date(found.at).toISOString()})`
            : `${region}: never declared (not lost)`,
        )
        break
      }
      default:
        throw new Error(USAGE)
    }
  } catch (error) {
    throw new Error(explain(error, target), { cause: error })
  }
}

main().catch((error) => {
  console.error(`regions: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
